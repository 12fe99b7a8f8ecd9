package api

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/shopspring/decimal"
)

// Amount is an exact decimal for JSON: money in GBP, or a ratio. It is
// written as a JSON string with at least 3 decimals ("2.550", "-0.100",
// "9747747.934"); a value with more decimals than that (an average, a rate)
// is written with every digit it has. It is never a JSON number, so no
// client parses it into binary floating point by accident.
type Amount struct {
	decimal.Decimal
	// bad is the JSON value, when it is no decimal string: UnmarshalJSON
	// keeps it instead of failing, so that a request's check names the
	// member (encoding/json does not add the path to an Unmarshaler's
	// error).
	bad *string
}

// NewAmount wraps d.
func NewAmount(d decimal.Decimal) Amount { return Amount{Decimal: d} }

// String formats a as it appears in JSON, without quotes.
func (a Amount) String() string {
	if a.Decimal.Exponent() >= -3 || a.Decimal.Equal(a.Decimal.Round(3)) {
		return a.Decimal.StringFixed(3)
	}
	return a.Decimal.String()
}

// MarshalJSON writes a as a quoted decimal string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// decimalString is the form of a decimal string the API reads, as
// openapi.json states it: digits with an optional sign and fraction; no
// exponent, no "+", no bare point.
var decimalString = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// UnmarshalJSON reads a quoted decimal string (tests and clients). Any
// other JSON value is kept for Invalid, not an error here.
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil || !decimalString.MatchString(s) {
		raw := string(b)
		a.bad = &raw
		return nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		raw := string(b)
		a.bad = &raw
		return nil
	}
	a.Decimal, a.bad = d, nil
	return nil
}

// Invalid returns why the JSON value a was read from is no decimal string,
// or nil when it is one.
func (a *Amount) Invalid() error {
	if a == nil || a.bad == nil {
		return nil
	}
	return fmt.Errorf("%s is not a decimal string such as \"2.55\"", *a.bad)
}
