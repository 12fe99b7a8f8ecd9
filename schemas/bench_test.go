package schemas_test

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// placedEvent returns a serialized order.placed envelope with n lines (the
// real file averages 21 lines per document).
func placedEvent(b *testing.B, n int) []byte {
	b.Helper()
	at := time.Date(2011, 3, 1, 9, 30, 0, 0, time.UTC)
	p := &schemas.OrderPlaced{OrderNumber: "536365", Kind: schemas.KindSale,
		Customer: schemas.Customer{ID: "17850", Country: "United Kingdom"}, Currency: schemas.CurrencyGBP}
	total := decimal.Zero
	for i := 1; i <= n; i++ {
		l := schemas.Line{LineNo: i, SourceLine: i + 1, StockCode: fmt.Sprintf("85%03dA", i),
			Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6,
			UnitPrice: schemas.NewMoney(decimal.RequireFromString("2.55"), schemas.CurrencyGBP), InvoicedAt: at}
		p.Lines = append(p.Lines, l)
		total = total.Add(l.Amount().Amount)
	}
	p.Total = schemas.NewMoney(total, schemas.CurrencyGBP)
	env, err := schemas.NewEnvelope("0c4f3d2e-1111-5222-8333-444455556666", 1, at, p, schemas.Metadata{})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkValidate measures validation of one order.placed event of 21
// lines, the cost the write side pays per event: Validate (the token walk
// over the compiled schemas) beside the JSON Schema library alone.
func BenchmarkValidate(b *testing.B) {
	v, err := schemas.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	raw := placedEvent(b, 21)
	for _, bb := range []struct {
		name     string
		validate func([]byte) error
	}{{"walk", v.Validate}, {"library", v.LibraryValidate}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bb.validate(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures what a consumer pays per order.placed event of 21
// lines: ParseEnvelope (the runtime) and Decode of the payload (the sink).
func BenchmarkDecode(b *testing.B) {
	raw := placedEvent(b, 21)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := schemas.ParseEnvelope(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpcastPlacedV1 measures what a consumer pays on top of
// BenchmarkDecode for an order.placed v1 event of 21 lines: the upcast of
// its payload to v2 (the lines copied as raw JSON).
func BenchmarkUpcastPlacedV1(b *testing.B) {
	up := schemas.NewUpcasters()
	env, err := schemas.ParseEnvelope(placedEvent(b, 21))
	if err != nil {
		b.Fatal(err)
	}
	if env, err = up.Downcast(env, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(env.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := up.Upcast(env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode measures what the write side pays to turn one order.placed
// of 21 lines into outbox bytes: NewEnvelope (the payload's encoding) and
// Validator.Marshal (the envelope's encoding and the validation walk).
// Besides ns/op (wall clock) it reports cpu-ns/op, the process's CPU time
// per event, steadier than the wall clock on a shared machine.
func BenchmarkEncode(b *testing.B) {
	v, err := schemas.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	env, err := schemas.ParseEnvelope(placedEvent(b, 21))
	if err != nil {
		b.Fatal(err)
	}
	p, err := env.Decode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		e, err := schemas.NewEnvelope(env.AggregateID, 1, env.OccurredAt, p, schemas.Metadata{CorrelationID: "import:1", CausationID: "invoice:536365"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuPerOp starts counting the process's CPU time; the function it returns
// reports it per operation as cpu-ns/op.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkValidateRealFile validates the real file's 51,797 events in turn,
// as the import meets them (every description, price and time of the file,
// not one event's strings over and over): ns/op is per event.
func BenchmarkValidateRealFile(b *testing.B) {
	v, err := schemas.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	var raws [][]byte
	var size int64
	for _, ev := range testfixture.RealEvents(b) {
		raw, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		raws, size = append(raws, raw), size+int64(len(raw))
	}
	b.SetBytes(size / int64(len(raws)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := v.Validate(raws[i%len(raws)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
