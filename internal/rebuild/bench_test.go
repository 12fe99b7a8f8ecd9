package rebuild

import (
	"context"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"golang.org/x/sync/errgroup"
)

// BenchmarkRebuild measures shadow rebuilds from offset zero over the real
// file's events (51,797 records on 12 partitions) into a new generation,
// cutover included: analytics alone, search alone, and both at the same
// time as `orderstream replay all` runs them (target: both under 60 s). No
// daemon runs, so the settle time is 1 ms instead of 10 s. Reported:
// events/s per projection and seconds per rebuild.
//
//	go test ./internal/rebuild/ -run '^$' -bench Rebuild -benchtime 1x -timeout 30m
func BenchmarkRebuild(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	events := testfixture.RealEvents(b)
	topic := testfixture.ProduceTopic(b, brokers, events)
	cfg := ShadowConfig{Brokers: brokers, Topic: topic, Settle: time.Millisecond, ProgressInterval: 100 * time.Millisecond,
		WriteSide: eventsWriteSide(events)}

	run := func(b *testing.B, models ...model) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			results := make([]Result, len(models))
			var eg errgroup.Group
			for i, m := range models {
				c := cfg
				c.Group = testenv.Name("rebuild_" + m.p.Name()) // not the production name: other runs share the cluster
				eg.Go(func() error {
					res, err := Shadow(ctx, m.p, c, testLog(b))
					results[i] = res
					return err
				})
			}
			if err := eg.Wait(); err != nil {
				b.Fatal(err)
			}
			wall := time.Since(start)
			b.ReportMetric(wall.Seconds(), "s/rebuild")
			for _, r := range results {
				if r.Events != int64(len(events)) {
					b.Fatalf("%s replayed %d events, want %d", r.Projection, r.Events, len(events))
				}
				b.ReportMetric(r.Rate(), r.Projection+"-events/s")
				b.Logf("%s: generation %d, %d events in %s (%.0f events/s)", r.Projection, r.Generation, r.Events,
					r.Duration.Round(time.Millisecond), r.Rate())
			}
		}
	}
	b.Run("analytics", func(b *testing.B) { run(b, analyticsModel(b)) })
	b.Run("search", func(b *testing.B) { run(b, searchModel(b)) })
	b.Run("both", func(b *testing.B) { run(b, analyticsModel(b), searchModel(b)) })
}
