// Package readmodeltest is the contract test suite every read model passes:
// one set of tests (Run) run against each projection through a small
// adapter (ReadModel, Instance), the way watermill runs one suite against
// every Pub/Sub. It is imported by tests only.
//
// What the suite proves of a read model, on its real service:
//   - idempotency under redelivery: the same batch written twice, a batch
//     holding the same event twice and overlapping batches change no fact;
//   - ordering per order: events of an order apply in version order, and an
//     older event arriving after a newer one (in a later batch or in the same
//     batch) changes nothing;
//   - generation writes: a sink of generation N does not touch N−1; Cutover
//     and Rollback switch what readers see;
//   - rejection classification: a malformed payload, an unknown schema
//     version and an out-of-range amount are permanent rejections
//     (*consumers.RejectedError) wrapping schemas.ErrInvalidEvent,
//     schemas.ErrUnknownEvent and schemas.ErrOutOfRange (and the read
//     model's own rejection sentinel, if it has one), the rest of the batch
//     being durable; a sink whose server does not answer fails with a
//     transient error (anything but a RejectedError), which the consumer
//     runtime retries;
//   - exactness: on a slice of the real file's events, every order's Fact
//     equals the write side's fold of the same events (the order aggregate,
//     producer/order, replayed command by command).
//
// The suite compares Facts: what every read model can answer per order
// (version, status, total, line count), with the status of the contract's
// fold (schemas.Fold): a sale refunded in part keeps its status.
package readmodeltest
