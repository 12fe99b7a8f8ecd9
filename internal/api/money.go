package api

import (
	"encoding/json"
	"fmt"

	"github.com/shopspring/decimal"
)

// Amount is an exact decimal for JSON: money in GBP, or a ratio. It is
// written as a JSON string with at least 3 decimals ("2.550", "-0.100",
// "9747747.934"); a value with more decimals than that (an average, a rate)
// is written with every digit it has. It is never a JSON number, so no
// client parses it into binary floating point by accident.
type Amount struct{ decimal.Decimal }

// NewAmount wraps d.
func NewAmount(d decimal.Decimal) Amount { return Amount{d} }

// String formats a as it appears in JSON, without quotes.
func (a Amount) String() string {
	if a.Decimal.Exponent() >= -3 || a.Decimal.Equal(a.Decimal.Round(3)) {
		return a.Decimal.StringFixed(3)
	}
	return a.Decimal.String()
}

// MarshalJSON writes a as a quoted decimal string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads a quoted decimal string (tests and clients).
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("amount: want a decimal string: %w", err)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("amount %q: %w", s, err)
	}
	a.Decimal = d
	return nil
}
