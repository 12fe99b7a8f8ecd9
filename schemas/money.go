package schemas

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// CurrencyGBP is the currency of every amount in the Online Retail data set.
const CurrencyGBP = "GBP"

// Money is an exact amount in a currency. The zero value has no currency and
// is invalid in an event.
//
// JSON shape: {"amount":"2.550","currency":"GBP"}; amount is a decimal string
// (schema: ^-?[0-9]+(\.[0-9]+)?$), currency three upper-case letters (ISO 4217).
type Money struct {
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

// NewMoney returns amount in currency.
func NewMoney(amount decimal.Decimal, currency string) Money {
	return Money{Amount: amount, Currency: currency}
}

// Add returns m + o. It fails when the currencies differ.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("add %s to %s: %w", o.Currency, m.Currency, ErrCurrencyMismatch)
	}
	return Money{Amount: m.Amount.Add(o.Amount), Currency: m.Currency}, nil
}

// Neg returns -m.
func (m Money) Neg() Money { return Money{Amount: m.Amount.Neg(), Currency: m.Currency} }

// Equal reports whether m and o are the same amount in the same currency
// (2.5 equals 2.50).
func (m Money) Equal(o Money) bool { return m.Currency == o.Currency && m.Amount.Equal(o.Amount) }

// String formats m as "2.55 GBP".
func (m Money) String() string { return m.Amount.String() + " " + m.Currency }

// ErrCurrencyMismatch is returned when amounts in different currencies meet.
var ErrCurrencyMismatch = fmt.Errorf("currency mismatch")
