// Package order is the write-side domain: the Order aggregate, its
// invariants and the events it emits. It imports no database, Kafka or HTTP
// package.
//
// An Order is changed only through its methods (Place, Pay, Ship, Cancel,
// Refund). Each method checks the rules, returns a *RuleError for a broken
// one and otherwise records one pending event and applies it; the repository
// persists pending events and state in one transaction with optimistic
// concurrency on Version.
//
// Lifecycle (kind sale):        placed → paid → shipped; placed|paid → cancelled;
//
//	paid|shipped → refunded (partial refunds keep the status until fully refunded).
//
// Kind credit_note:             placed → refunded (the credited amount).
// Kind adjustment:              placed only (a bookkeeping document).
package order
