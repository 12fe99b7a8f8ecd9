// Package testfixture gives integration tests the real input
// (../shared/data/online_retail.csv.gz) in the forms they need:
//
//   - RealFile: the file's path (skip, or fail under CI=true, when absent);
//   - RealEvents: every event the write side emits for it (51,797);
//   - ProduceTopic: those events in a fresh Kafka topic, exactly as the relay
//     writes them (key, value and CloudEvents headers), so a projection test
//     needs neither Postgres nor the relay;
//   - ExpectedFromCSV: the figures every read model must reproduce, computed
//     independently of producer/csvimport (encoding/csv + exact decimals).
//
// Results are computed once per test binary and shared; callers must not
// modify them.
package testfixture
