package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// TestLimitsAtAndPastTheBound checks every bound of the range at the bound
// (accepted by the Check function and by the JSON Schema) and one past it
// (refused by both), so the Go constants and v1/*.json cannot drift apart.
// (MaxEventBytes binds before MaxLines for lines of any size: 10,000 lines
// take about 1.5 MB; Validate checks the schema, Marshal the size.)
func TestLimitsAtAndPastTheBound(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	maxAmt := schemas.MaxAmount().String()
	withLine := func(fn func(l *schemas.Line)) *schemas.OrderPlaced {
		p := placed()
		p.Lines = p.Lines[:1]
		fn(&p.Lines[0])
		p.Total = p.Lines[0].Amount()
		return p
	}
	manyLines := func(n int) *schemas.OrderPlaced {
		p := placed()
		l := p.Lines[1]
		p.Lines = make([]schemas.Line, n)
		for i := range p.Lines {
			p.Lines[i] = l
			p.Lines[i].LineNo = i + 1
			p.Lines[i].StockCode = "P"
		}
		p.Total = gbp(decimal.New(int64(3*n), -3).String())
		return p
	}
	tests := []struct {
		name   string
		check  error // the Go check of the value
		give   schemas.Payload
		wantOK bool
	}{
		{"unit price at the bound", schemas.CheckAmount(decimal.RequireFromString(maxAmt)),
			withLine(func(l *schemas.Line) { l.Quantity, l.UnitPrice = 1, gbp(maxAmt) }), true},
		{"unit price one past", schemas.CheckAmount(decimal.RequireFromString("100000000000000")),
			withLine(func(l *schemas.Line) { l.Quantity, l.UnitPrice = 1, gbp("100000000000000") }), false},
		{"negative unit price at the bound", schemas.CheckAmount(decimal.RequireFromString("-" + maxAmt)),
			withLine(func(l *schemas.Line) { l.Quantity, l.UnitPrice = 1, gbp("-"+maxAmt) }), true},
		{"4 decimals", schemas.CheckAmount(decimal.RequireFromString("0.0001")),
			withLine(func(l *schemas.Line) { l.UnitPrice = gbp("0.0001") }), false},
		{"quantity at the bound", schemas.CheckQuantity(schemas.MaxQuantity),
			withLine(func(l *schemas.Line) { l.Quantity = schemas.MaxQuantity }), true},
		{"quantity one past", schemas.CheckQuantity(schemas.MaxQuantity + 1),
			withLine(func(l *schemas.Line) { l.Quantity = schemas.MaxQuantity + 1 }), false},
		{"negative quantity one past", schemas.CheckQuantity(-schemas.MaxQuantity - 1),
			withLine(func(l *schemas.Line) { l.Quantity = -schemas.MaxQuantity - 1 }), false},
		{"time at the upper bound", schemas.CheckTime(schemas.MaxTime()),
			withLine(func(l *schemas.Line) { l.InvoicedAt = schemas.MaxTime() }), true},
		{"time a year past", schemas.CheckTime(schemas.MaxTime().AddDate(1, 0, 0)),
			withLine(func(l *schemas.Line) { l.InvoicedAt = schemas.MaxTime().AddDate(1, 0, 0) }), false},
		{"time at the lower bound", schemas.CheckTime(schemas.MinTime()),
			withLine(func(l *schemas.Line) { l.InvoicedAt = schemas.MinTime() }), true},
		{"time a year before", schemas.CheckTime(time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)),
			withLine(func(l *schemas.Line) { l.InvoicedAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"description of 512 characters of 3 bytes", schemas.CheckText(strings.Repeat("€", 512), schemas.MaxDescription),
			withLine(func(l *schemas.Line) { l.Description = strings.Repeat("€", 512) }), true},
		{"description of 513 characters", schemas.CheckText(strings.Repeat("a", 513), schemas.MaxDescription),
			withLine(func(l *schemas.Line) { l.Description = strings.Repeat("a", 513) }), false},
		{"NUL in a description", schemas.CheckText("a\x00b", schemas.MaxDescription),
			withLine(func(l *schemas.Line) { l.Description = "a\x00b" }), false},
		{"lines at the bound", nil, manyLines(schemas.MaxLines), true},
		{"lines one past", errors.New("no Go check: the aggregate counts"), manyLines(schemas.MaxLines + 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if (tt.check == nil) != tt.wantOK {
				t.Errorf("Go check = %v, want ok = %v", tt.check, tt.wantOK)
			}
			b, err := json.Marshal(envelope(t, tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(b); (err == nil) != tt.wantOK {
				t.Errorf("JSON Schema: err = %v, want ok = %v", err, tt.wantOK)
			}
		})
	}
}

func TestAmountMilli(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		want    int64
		wantErr string
	}{
		{give: "0", want: 0},
		{give: "2.55", want: 2550},
		{give: "-0.001", want: -1},
		{give: "2.5500", want: 2550},
		{give: "99999999999999.999", want: schemas.MaxAmountMilli},
		{give: "-99999999999999.999", want: -schemas.MaxAmountMilli},
		{give: "99999999999999.9990", want: schemas.MaxAmountMilli},
		{give: "100000000000000", wantErr: "is beyond ±99999999999999.999"},
		{give: "1e15", wantErr: "is beyond"},
		{give: "123456789012345678901234", wantErr: "is beyond"},
		{give: "0.0001", wantErr: "more than 3 decimals"},
		{give: "1.00000000000000000000001", wantErr: "more than 3 decimals"},
	}
	for _, tt := range tests {
		got, err := schemas.AmountMilli(decimal.RequireFromString(tt.give))
		if tt.wantErr != "" {
			if !errors.Is(err, schemas.ErrOutOfRange) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("AmountMilli(%s) = %d, %v; want an error containing %q", tt.give, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("AmountMilli(%s) = %d, %v; want %d", tt.give, got, err, tt.want)
		}
	}
}

func TestLineAmountAndRunningTotal(t *testing.T) {
	t.Parallel()
	// The case of issue 10: 1000 × 1e12 = 1e15 is refused; 1000 × 99999999999.999 is the largest.
	if _, err := schemas.LineAmountMilli(1000, 1_000_000_000_000_000); !errors.Is(err, schemas.ErrOutOfRange) {
		t.Errorf("1000 × 1e12: err = %v, want ErrOutOfRange", err)
	}
	if got, err := schemas.LineAmountMilli(-1000, 99_999_999_999_999); err != nil || got != -99_999_999_999_999_000 {
		t.Errorf("-1000 × 99999999999.999 = %d, %v", got, err)
	}
	if got, err := schemas.AddMilli(schemas.MaxAmountMilli-1, 1); err != nil || got != schemas.MaxAmountMilli {
		t.Errorf("AddMilli at the bound = %d, %v", got, err)
	}
	if _, err := schemas.AddMilli(schemas.MaxAmountMilli, 1); !errors.Is(err, schemas.ErrOutOfRange) {
		t.Errorf("AddMilli one past: err = %v", err)
	}
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give, want string
	}{
		{"WHITE HANGING HEART", ""},
		{"caf\xe9", "is not valid UTF-8 (byte 0xe9 at byte 4)"},
		{"a\x00", "contains a NUL character at byte 2"},
		{strings.Repeat("é", 65), "has 65 characters, more than 64"},
	}
	for _, tt := range tests {
		err := schemas.CheckText(tt.give, 64)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && (!strings.Contains(got, tt.want) || !errors.Is(err, schemas.ErrOutOfRange))) {
			t.Errorf("CheckText(%q) = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give, want string
	}{
		{"United Kingdom", ""},
		{"Côte d'Ivoire", ""},
		{"a\x00", "contains a NUL character at byte 2"},
		{"\aFrance", "contains a control character at byte 1"},
		{"85123A\t", "contains a control character at byte 7"},
		{"x\u0085", "contains a control character at byte 2"},
		{strings.Repeat("é", 65), "has 65 characters, more than 64"},
	}
	for _, tt := range tests {
		err := schemas.CheckKey(tt.give, 64)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && (!strings.Contains(got, tt.want) || !errors.Is(err, schemas.ErrOutOfRange))) {
			t.Errorf("CheckKey(%q) = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestMarshalRefusesLargeEvent(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	p := placed()
	l := p.Lines[1]
	l.Description = strings.Repeat("x", schemas.MaxDescription)
	p.Lines = nil
	for i := 1; i <= 2000; i++ { // ~ 2000 × 650 bytes
		l.LineNo = i
		p.Lines = append(p.Lines, l)
	}
	p.Total = gbp("6")
	_, err := v.Marshal(envelope(t, p))
	if !errors.Is(err, schemas.ErrInvalidEvent) || !errors.Is(err, schemas.ErrOutOfRange) || !strings.Contains(err.Error(), "more than 1000000") {
		t.Fatalf("err = %v, want an event too large", err)
	}
}
