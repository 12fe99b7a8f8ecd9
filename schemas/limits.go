package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// The range of every value an event may carry: the intersection of what
// every store of the platform holds exactly — the write side (PostgreSQL,
// producer/store/migrations), Kafka (producer/relay), analytics
// (ClickHouse, projections/analytics/migrations) and search
// (OpenSearch/Elasticsearch, projections/search/mapping.go). A value inside
// it is stored, summed and shown the same by every read model; the write
// side refuses anything outside (order aggregate, CSV import), so no read
// model ever has to dead-letter an event the write side accepted. The JSON
// Schema files (v1/*.json) state the same bounds where JSON Schema can
// express them; the functions below state all of them.
const (
	// MoneyScale is the most decimals an amount may have: 3. Source:
	// ClickHouse Decimal(18,3) of every money column (order_lines.unit_price
	// and amount, orders.total, order_status.amount); search's total_milli is
	// total × 1000 as a long. The data set has at most 3 decimals
	// (shared/data/README.md).
	MoneyScale = 3

	// MaxAmountMilli is the largest |amount| in thousandths of the currency
	// unit: 99,999,999,999,999.999 (10^14 − 0.001). It bounds every unit
	// price, every line amount (quantity × unit price), every running total
	// of an order's lines in line order (so a reader summing the lines in a
	// fixed-width type never overflows half-way), the order total and every
	// paid and refunded amount. Source: PostgreSQL numeric(20,6) of
	// orders.total/paid/refunded and order_lines.unit_price holds 14 integer
	// digits — the tightest store; ClickHouse Decimal(18,3) holds 15 integer
	// digits per row (its sums are Decimal(38,3), which 10^9 rows of this
	// bound cannot overflow) and total_milli (a long) 18 digits.
	MaxAmountMilli = 99_999_999_999_999_999

	// MaxQuantity is the largest |quantity| of a line, in units: 999,999,999
	// (10^9 − 1). Source: analytics sums quantities as Int64 (top products by
	// quantity; ClickHouse's sum(Int64) wraps silently), which stays exact up
	// to 9.2·10^9 lines of this bound; PostgreSQL bigint and search's long
	// hold each value.
	MaxQuantity = 999_999_999

	// MaxLines is the most lines an order may have: 10,000. Source: lines
	// are a nested field of the search document, and OpenSearch and
	// Elasticsearch refuse a document with more nested objects than
	// index.mapping.nested_objects.limit (default 10,000). The real file's
	// largest document has 1,114 lines.
	MaxLines = 10_000

	// MaxEventBytes is the largest serialized envelope, in bytes: 1,000,000.
	// Source: the relay produces with a 1 MiB batch limit
	// (kgo.ProducerBatchMaxBytes) and Kafka's default message.max.bytes is
	// 1,048,588; the rest is left for the key, headers and batch framing. A
	// larger event would stop the relay on every restart (LESSONS.md).
	// Validator.Marshal enforces it.
	MaxEventBytes = 1_000_000

	// Lengths of texts, in Unicode characters (code points, as JSON Schema's
	// maxLength counts). Keyword fields of the search mapping must stay far
	// below Lucene's 32,766-byte term limit; the rest are the contract's own
	// limits (v1/*.json).
	MaxOrderNumber    = 32
	MaxStockCode      = 64
	MaxDescription    = 512
	MaxCountry        = 64
	MaxCustomerID     = 64
	MaxReason         = 512
	MaxReference      = 128
	MaxCarrier        = 64
	MaxTrackingNumber = 128

	// MinTimeUnix and MaxTimeUnix bound every timestamp of an event
	// (occurred_at, invoiced_at), in seconds since the Unix epoch, both
	// inclusive: 1970-01-01T00:00:01Z .. 2105-12-31T23:59:59Z. Source:
	// ClickHouse DateTime (UInt32 seconds, to 2106-02-07) of placed_at and
	// updated_at, with the epoch itself refused as the typical zero-value bug
	// and the end kept inside whole years. PostgreSQL timestamptz and search
	// dates hold the whole range; analytics keeps whole seconds, search
	// milliseconds.
	MinTimeUnix = 1
	MaxTimeUnix = 4_291_747_199
)

// ErrOutOfRange is wrapped by every error of the functions below.
var ErrOutOfRange = errors.New("out of range")

// RangeError is a value outside the range. Error() is Value and Problem
// joined ("100000000000000 is beyond ±99999999999999.999"); Value is empty
// for texts (never quoted: it may be megabytes long), so a caller that
// names and quotes the value itself uses Problem alone. It wraps
// ErrOutOfRange.
type RangeError struct {
	Value   string
	Problem string
}

func (e *RangeError) Error() string {
	if e.Value == "" {
		return e.Problem
	}
	return e.Value + " " + e.Problem
}

func (e *RangeError) Unwrap() error { return ErrOutOfRange }

func rangeErr(value, format string, args ...any) *RangeError {
	return &RangeError{Value: value, Problem: fmt.Sprintf(format, args...)}
}

// MaxAmount returns MaxAmountMilli as a decimal: 99999999999999.999.
func MaxAmount() decimal.Decimal { return decimal.New(MaxAmountMilli, -MoneyScale) }

// MinTime and MaxTime return MinTimeUnix and MaxTimeUnix as UTC times.
func MinTime() time.Time { return time.Unix(MinTimeUnix, 0).UTC() }

// MaxTime returns MaxTimeUnix as a UTC time (see MinTime).
func MaxTime() time.Time { return time.Unix(MaxTimeUnix, 0).UTC() }

// pow10 holds 10^0 .. 10^18.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// AmountMilli returns d in thousandths of the currency unit when d is in
// the money range (at most MoneyScale decimals, |d| ≤ MaxAmount), and a
// *RangeError saying why otherwise. It does not allocate
// for amounts of up to 18 digits.
func AmountMilli(d decimal.Decimal) (int64, error) {
	if d.IsZero() {
		return 0, nil
	}
	if d.NumDigits() <= 18 {
		coef, exp := d.CoefficientInt64(), int(d.Exponent())
		switch {
		case exp >= -MoneyScale && exp+MoneyScale <= 18:
			shift := pow10[exp+MoneyScale]
			if abs(coef) <= MaxAmountMilli/shift {
				return coef * shift, nil
			}
		case exp < -MoneyScale && -exp-MoneyScale <= 18 && coef%pow10[-exp-MoneyScale] == 0:
			// trailing zeros beyond the scale ("2.5500")
			if v := coef / pow10[-exp-MoneyScale]; abs(v) <= MaxAmountMilli {
				return v, nil
			}
		}
	}
	if !d.Truncate(MoneyScale).Equal(d) {
		return 0, rangeErr(d.String(), "has more than %d decimals", MoneyScale)
	}
	return 0, rangeErr(d.String(), "is beyond ±%s", MaxAmount())
}

// CheckAmount returns AmountMilli's error.
func CheckAmount(d decimal.Decimal) error {
	_, err := AmountMilli(d)
	return err
}

// LineAmountMilli returns quantity × unit price (price in thousandths, as
// AmountMilli returns it) when the product is in the money range, and an
// *RangeError otherwise.
func LineAmountMilli(quantity, priceMilli int64) (int64, error) {
	if quantity == 0 || priceMilli == 0 {
		return 0, nil
	}
	if abs(quantity) > MaxAmountMilli/abs(priceMilli) {
		return 0, rangeErr(fmt.Sprintf("%d × %s", quantity, decimal.New(priceMilli, -MoneyScale)), "is beyond ±%s", MaxAmount())
	}
	return quantity * priceMilli, nil
}

// AddMilli returns the running total sum + amount (both in thousandths, in
// range) when it is in the money range, and an error wrapping ErrOutOfRange
// otherwise.
func AddMilli(sum, amount int64) (int64, error) {
	s := sum + amount // cannot overflow: both are below 10^17 in magnitude
	if abs(s) > MaxAmountMilli {
		return 0, rangeErr(fmt.Sprintf("%s + %s", decimal.New(sum, -MoneyScale), decimal.New(amount, -MoneyScale)), "is beyond ±%s", MaxAmount())
	}
	return s, nil
}

// CheckQuantity reports a quantity beyond ±MaxQuantity (a *RangeError).
func CheckQuantity(q int64) error {
	if q < -MaxQuantity || q > MaxQuantity {
		return rangeErr(fmt.Sprint(q), "is beyond ±%d", MaxQuantity)
	}
	return nil
}

// CheckTime reports a time outside MinTime .. MaxTime, inclusive (a
// *RangeError).
func CheckTime(t time.Time) error {
	if t.Before(MinTime()) || t.After(MaxTime()) {
		return rangeErr(t.UTC().Format(time.RFC3339Nano), "is outside %s .. %s",
			MinTime().Format(time.RFC3339), MaxTime().Format(time.RFC3339))
	}
	return nil
}

// CheckText reports a text that is not valid UTF-8 (encoding/json would
// replace the bytes by U+FFFD, so the event would differ from the stored
// state, and PostgreSQL refuses them), contains U+0000 (PostgreSQL text
// cannot store it) or has more than max characters, as a *RangeError with
// an empty Value.
func CheckText(s string, max int) error {
	if !utf8.ValidString(s) {
		i := 0
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return rangeErr("", "is not valid UTF-8 (byte 0x%02x at byte %d)", s[i], i+1)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return rangeErr("", "contains a NUL character at byte %d (PostgreSQL text cannot store it)", i+1)
	}
	if len(s) <= max { // never more characters than bytes
		return nil
	}
	if n := utf8.RuneCountInString(s); n > max {
		return rangeErr("", "has %d characters, more than %d", n, max)
	}
	return nil
}

// CheckKey is CheckText for a text that names or filters orders (order
// number, customer id, country, stock code): it also reports a control
// character (unicode.IsControl: U+0000..U+001F, U+007F..U+009F), which the
// query API refuses in an order reference or a filter, so that every value
// stored can be asked for.
func CheckKey(s string, max int) error {
	if err := CheckText(s, max); err != nil {
		return err
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return rangeErr("", "contains a control character at byte %d", i+1)
	}
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
