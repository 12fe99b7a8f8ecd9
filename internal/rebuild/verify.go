package rebuild

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/orderstream/orderstream/projections"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Facts are what Verify compares of one order beyond its version, where the
// write side and a read model can give them exactly.
type Facts = projections.Facts

// FactWriteSide is a WriteSide that can also give each order's Facts from
// one snapshot, once relayed (PostgresWriteSide).
type FactWriteSide interface {
	RelayedFacts(ctx context.Context) (map[string]Facts, error)
}

// FactsOnce is a write side whose facts are read once: the first
// RelayedFacts (or RelayedVersions, derived from the facts) reads ws and
// every later call answers with that snapshot, so that verifying several
// read models in turn reads the write side, and waits for the relay, once.
// Exact for every read model verified after it: a snapshot older than a
// read model's evidence leaves out only orders written since (not judged),
// and a read model ahead of it agrees (Judge). Not safe for concurrent use.
type FactsOnce struct {
	WriteSide interface {
		WriteSide
		FactWriteSide
	}
	facts map[string]Facts
}

// RelayedFacts implements FactWriteSide.
func (o *FactsOnce) RelayedFacts(ctx context.Context) (map[string]Facts, error) {
	if o.facts == nil {
		fs, err := o.WriteSide.RelayedFacts(ctx)
		if err != nil {
			return nil, err
		}
		o.facts = fs
	}
	return o.facts, nil
}

// RelayedVersions implements WriteSide with the versions of RelayedFacts.
func (o *FactsOnce) RelayedVersions(ctx context.Context) (Versions, error) {
	fs, err := o.RelayedFacts(ctx)
	if err != nil {
		return nil, err
	}
	return versionsOfFacts(fs), nil
}

// The verdicts of Verify beyond Judge's, for an order the read model holds
// at the write side's version with a different fact.
const (
	VerdictWrongStatus Verdict = "wrong_status"
	VerdictWrongTotal  Verdict = "wrong_total"
	VerdictWrongLines  Verdict = "wrong_line_count"
)

// VerifyConfig configures Verify.
type VerifyConfig struct {
	// Brokers, Topic, WriteSide and ClientOpts as for the cutover guard
	// (Force is not used). Brokers, Topic and WriteSide are required.
	Guard GuardConfig
	// Group is the consumer group that fills the serving generation (the
	// daemon's): events at or past its committed offsets are in flight.
	// Required.
	Group string
	// Sample, when > 0, compares that many orders of the write side drawn
	// at random (uniformly, without replacement) instead of all of them.
	// Default 0: every order.
	Sample int
	// Rand draws the sample; nil: a randomly seeded source.
	Rand *rand.Rand
}

// Validate reports every problem of c at once.
func (c VerifyConfig) Validate() error {
	var errs []error
	if err := c.Guard.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Group == "" {
		errs = append(errs, errors.New("verify: group: required (the consumer group that fills the serving generation)"))
	}
	if c.Sample < 0 {
		errs = append(errs, fmt.Errorf("verify: sample %d: want 0 (every order) or more", c.Sample))
	}
	return errors.Join(errs...)
}

// OrderDrift is one order a read model does not hold as the write side
// does, with nothing in flight that would bring it there.
type OrderDrift struct {
	OrderID string `json:"order_id"`
	// Drift is VerdictMissing or VerdictStale, or, at the same version,
	// VerdictWrongStatus, VerdictWrongTotal or VerdictWrongLines.
	Drift Verdict `json:"drift"`
	// ReadModel is the version of the last event the read model applied
	// for the order (0: absent), WriteSide orders.version.
	ReadModel int64 `json:"read_model_version"`
	WriteSide int64 `json:"write_side_version"`
	// Detail gives the differing fact of a wrong_* drift: "read model X,
	// write side Y" (totals in the currency unit).
	Detail string `json:"detail,omitempty"`
}

// Verification is the result of Verify for one read model.
type Verification struct {
	Projection string `json:"projection"`
	Generation uint32 `json:"generation"` // the serving generation compared
	// Sample is VerifyConfig.Sample when it drew fewer orders than the
	// write side holds; 0 when every order was compared.
	Sample  int         `json:"sample,omitempty"`
	Summary VersionDiff `json:"summary"`
	// FactsCompared counts the orders whose status, total and line count
	// were compared (both sides at the same version; 0 when the write side
	// or the read model cannot give facts).
	FactsCompared int `json:"facts_compared"`
	// Drift lists every order missing or stale, in order id order.
	Drift []OrderDrift `json:"drift"`
}

// OK reports whether no order drifted (in-flight orders apart).
func (v Verification) OK() bool { return len(v.Drift) == 0 }

// Verify compares the serving generation of p with the write side, order by
// order, by the rule of the cutover guard (CompareVersions, Judge): the
// write side's versions once the relay relayed them, the generation's
// versions (ReadModel.OrderVersions), and as in flight the events past the committed
// offsets of cfg.Group (GroupEvidence). It returns an error when a fact
// cannot be read (no generation serving, relay behind beyond RelayWait, a
// service unreachable); drift is no error: see Verification.OK.
//
// Cost: one read of the write side's orders and of the generation's
// versions (a map entry per order each), and a read of the topic past the
// group's offsets; Sample narrows the comparison, not these reads.
func Verify(ctx context.Context, p projections.ReadModel, cfg VerifyConfig) (Verification, error) {
	if err := cfg.Validate(); err != nil {
		return Verification{}, err
	}
	v := Verification{Projection: p.Name(), Drift: []OrderDrift{}}
	gens, err := p.Generations(ctx)
	if err != nil {
		return v, fmt.Errorf("verify %s: %w", p.Name(), err)
	}
	if v.Generation = projections.Serving(gens); v.Generation == 0 {
		return v, fmt.Errorf("verify %s: no generation is serving", p.Name())
	}
	kcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Guard.Brokers...)}, cfg.Guard.ClientOpts...)...)
	if err != nil {
		return v, fmt.Errorf("kafka client: %w", err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	ev, err := GroupEvidence(ctx, adm, cfg.Guard.Topic, cfg.Group)
	if err != nil {
		return v, fmt.Errorf("verify %s: %w", p.Name(), err)
	}
	want, got, pending, wantFacts, gotFacts, err := verifyInputs(ctx, adm, p, v.Generation, ev, cfg.Guard)
	if err != nil {
		return v, fmt.Errorf("verify %s generation %d: %w", p.Name(), v.Generation, err)
	}
	if cfg.Sample > 0 && cfg.Sample < len(want) {
		want, v.Sample = sample(want, cfg.Sample, cfg.Rand), cfg.Sample
	}
	v.Summary = CompareVersions(want, got, pending)
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w, g := want[id], got[id]
		d := Judge(w, g, pending[id])
		if d == VerdictMissing || d == VerdictStale {
			v.Drift = append(v.Drift, OrderDrift{OrderID: id, Drift: d, ReadModel: g, WriteSide: w})
			continue
		}
		if wantFacts == nil || g != w { // a read model ahead may differ rightly
			continue
		}
		v.FactsCompared++
		if kind, detail := compareFacts(gotFacts[id], wantFacts[id]); kind != "" {
			v.Drift = append(v.Drift, OrderDrift{OrderID: id, Drift: kind, ReadModel: g, WriteSide: w, Detail: detail})
		}
	}
	return v, nil
}

// verifyInputs reads what Verify compares, in the order the guard does
// (versionsOf): with facts (a FactWriteSide) the
// versions are those of the facts, read once; else wantFacts is nil.
func verifyInputs(ctx context.Context, adm *kadm.Client, p projections.ReadModel, n uint32, ev Evidence, cfg GuardConfig) (want, got, pending Versions, wantFacts, gotFacts map[string]Facts, err error) {
	fw, okW := cfg.WriteSide.(FactWriteSide)
	if !okW {
		want, got, pending, err = versionsOf(ctx, adm, p, n, ev, cfg)
		return want, got, pending, nil, nil, err
	}
	if wantFacts, err = fw.RelayedFacts(ctx); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	if pending, err = pendingPast(ctx, adm, ev, cfg); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	if gotFacts, err = p.OrderFacts(ctx, n); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	return versionsOfFacts(wantFacts), versionsOfFacts(gotFacts), pending, wantFacts, gotFacts, nil
}

func versionsOfFacts(fs map[string]Facts) Versions {
	vs := make(Versions, len(fs))
	for id, f := range fs {
		vs[id] = f.Version
	}
	return vs
}

// compareFacts returns the first fact of got that differs from want (status,
// then total, then line count) and "read model X, write side Y"; "" when
// they agree.
func compareFacts(got, want Facts) (Verdict, string) {
	switch {
	case got.Status != want.Status:
		return VerdictWrongStatus, fmt.Sprintf("read model %s, write side %s", got.Status, want.Status)
	case got.TotalMilli != want.TotalMilli:
		return VerdictWrongTotal, fmt.Sprintf("read model %s, write side %s", milliString(got.TotalMilli), milliString(want.TotalMilli))
	case got.Lines != want.Lines:
		return VerdictWrongLines, fmt.Sprintf("read model %d lines, write side %d", got.Lines, want.Lines)
	}
	return "", ""
}

func milliString(m int64) string { return decimal.New(m, -3).StringFixed(3) }

// sample returns n entries of vs drawn uniformly without replacement.
func sample(vs Versions, n int, r *rand.Rand) Versions {
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	ids := slices.Sorted(maps.Keys(vs)) // sorted: a seeded source draws the same sample
	out := make(Versions, n)
	for i := range n {
		j := i + r.IntN(len(ids)-i)
		ids[i], ids[j] = ids[j], ids[i]
		out[ids[i]] = vs[ids[i]]
	}
	return out
}
