package analytics

import "github.com/orderstream/orderstream/schemas"

// statusSQL returns the SELECT of the view order_status on the generation
// tables orders and status (qualified names): one row per order with
// columns order_id, status, event_type, amount, updated_at, version, where
// event_type, amount, updated_at and version are those of the order's last
// event and status is the contract's fold (schemas.Fold) over all its
// events:
//
//   - the status of its last event that is not a refund (placed, paid,
//     shipped, cancelled), unless
//   - it has refunds and it is a credit note or the refunds add up to what
//     was paid: then refunded.
//
// The sink never reads before it writes, so the fold runs here, at read
// time, over the rows of order_status_g<n> (one per event, keyed by order
// and version; FINAL drops redelivered twins, so the answer is exact under
// redelivery and replay). An order whose order.placed row is missing counts
// as a sale. Plain SQL that ClickHouse 18.16 and current releases accept: no
// window functions, every subquery aliased, no alias that shadows a column
// an aggregate reads. internal/rebuild TestReadModelsAgreeWithAggregate
// checks it against the aggregate, which applies schemas.Fold.
func statusSQL(orders, status string) string {
	refunded := "'" + schemas.TypeOrderRefunded + "'"
	return `SELECT order_id,
			if(fold_refunds > 0 AND (kind = '` + string(schemas.KindCreditNote) + `' OR fold_refunded = fold_paid), '` + string(schemas.StatusRefunded) + `', fold_status) AS status,
			fold_event_type AS event_type, fold_amount AS amount, fold_updated_at AS updated_at, fold_version AS version
		FROM (
			SELECT order_id,
				argMaxIf(status, version, event_type != ` + refunded + `) AS fold_status,
				countIf(event_type = ` + refunded + `) AS fold_refunds,
				argMaxIf(amount, version, event_type = '` + schemas.TypeOrderPaid + `') AS fold_paid,
				sumIf(amount, event_type = ` + refunded + `) AS fold_refunded,
				argMax(event_type, version) AS fold_event_type,
				argMax(amount, version) AS fold_amount,
				argMax(updated_at, version) AS fold_updated_at,
				max(version) AS fold_version
			FROM ` + status + ` FINAL
			GROUP BY order_id
		) AS fold_events
		ANY LEFT JOIN (SELECT order_id, kind FROM ` + orders + ` FINAL) AS fold_orders USING order_id`
}
