package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/internal/load"
	"github.com/spf13/cobra"
)

// loadOptions are the flags of `orderstream load`.
type loadOptions struct {
	url       string
	tokenFile string
	file      string
	rates     []float64
	duration  time.Duration
	probeRate float64
	probeWait time.Duration
	ceiling   bool
	format    outputFormat
	// /metrics URLs of the relay and the daemons, for the stage breakdown.
	relayMetrics, analyticsMetrics, searchMetrics string
}

// maxCeilingRate bounds the search for the highest sustained rate.
const maxCeilingRate = 20000

func newLoadCmd(*globals) *cobra.Command {
	var opts loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Drive the command API at fixed rates and report command and commit → queryable latency",
		Long: `Places orders through the API at each --rates (orders/s) for --duration, each
order shaped like a sale of --file (customer, country and lines of a real
document) and living one of these lifecycles: 70 % paid and shipped, 10 %
cancelled, 5 % paid and cancelled, 10 % shipped and half refunded, 5 % shipped
and refunded in full. Every command carries If-Match and an Idempotency-Key.

For at most --probe-rate orders a second, after the order's last command, one
query per read model (order detail for search, the day's summary for
analytics) carries the command's consistency token with Prefer: wait (--probe-wait): the
time from the command's answer to the query's 200 is the commit → queryable
latency (to within the API's poll: 20 ms growing to 100 ms). A probe still behind after --probe-wait is
counted LATE.

Prints one row per rate and read model: orders/s achieved, command latency
p50/p99, commit → queryable p50/p99/max. With --ceiling, the rate then grows
by half while the last one was sustained (≥ 95 % achieved, no error, no late
probe, command p99 < 1 s) and the highest sustained rate is printed.

With --relay-metrics, --analytics-metrics and --search-metrics (their
/metrics URLs) it also breaks commit → queryable down by stage, from the
daemons' own histograms over every event of each run: the relay's commit →
Kafka ack (orderstream_relay_commit_to_ack_seconds) and each daemon's Kafka
→ applied (orderstream_consumer_record_age_seconds).

The API must run with commands (and the relay and both projection daemons
for the read models to catch up).`,
		Example: `  orderstream load --url http://127.0.0.1:8080 --rates 100,500,1000 --duration 20s --ceiling
  orderstream load --token-file token.jwt --url https://api.example.com --rates 50 --format json
  orderstream load --rates 500 --duration 30s --relay-metrics http://127.0.0.1:9464/metrics \
    --analytics-metrics http://127.0.0.1:9465/metrics --search-metrics http://127.0.0.1:9466/metrics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.url, "url", "http://127.0.0.1:8080", "base URL of the API")
	f.StringVar(&opts.tokenFile, "token-file", "", "file holding a bearer access token with orders:write, orders:search and analytics:read (none: --auth=none)")
	f.StringVar(&opts.file, "file", "../shared/data/online_retail.csv.gz", "Online Retail CSV (or .csv.gz) to sample order shapes from (its first 100,000 lines)")
	f.Float64SliceVar(&opts.rates, "rates", []float64{100, 500, 1000}, "orders/s to run, one after the other")
	f.DurationVar(&opts.duration, "duration", load.DefaultDuration, "how long each rate starts orders")
	f.Float64Var(&opts.probeRate, "probe-rate", load.DefaultProbeRate, "orders probed a second (commit → queryable)")
	f.DurationVar(&opts.probeWait, "probe-wait", load.DefaultProbeWait, "Prefer: wait of a probe, whole seconds, at most the API's --wait-limit; a probe still behind after it is LATE")
	f.BoolVar(&opts.ceiling, "ceiling", false, "after --rates, raise the rate by half while it is sustained and report the highest sustained one")
	f.StringVar(&opts.relayMetrics, "relay-metrics", "", "the relay's /metrics URL (http://127.0.0.1:9464/metrics), for the stage breakdown")
	f.StringVar(&opts.analyticsMetrics, "analytics-metrics", "", "the analytics daemon's /metrics URL (http://127.0.0.1:9465/metrics), for the stage breakdown")
	f.StringVar(&opts.searchMetrics, "search-metrics", "", "the search daemon's /metrics URL (http://127.0.0.1:9466/metrics), for the stage breakdown")
	addFormatFlag(cmd, &opts.format)
	return cmd
}

func runLoad(ctx context.Context, opts loadOptions, stdout, stderr io.Writer) error {
	if len(opts.rates) == 0 {
		return usagef("--rates: give at least one rate (orders/s)")
	}
	var token string
	if opts.tokenFile != "" {
		b, err := os.ReadFile(opts.tokenFile)
		if err != nil {
			return usagef("--token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	f, err := os.Open(opts.file)
	if err != nil {
		return usagef("--file: %v", err)
	}
	shapes, err := load.Shapes(f, 100_000, 5000)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("--file %s: %w", opts.file, err)
	}
	cfg := load.Config{URL: opts.url, Token: token, Duration: opts.duration, ProbeRate: opts.probeRate, ProbeWait: opts.probeWait, Shapes: shapes, Rate: opts.rates[0],
		Stages: load.Stages(opts.relayMetrics, opts.analyticsMetrics, opts.searchMetrics)}
	for _, rate := range opts.rates { // every setting before the first order
		c := cfg
		c.Rate = rate
		if err := c.Validate(); err != nil {
			return usagef("%v", err)
		}
	}
	if err := load.Warm(ctx, cfg); err != nil {
		return err
	}
	reports, best, err := loadSteps(ctx, cfg, opts.rates, opts.ceiling, func(r load.Report) {
		fmt.Fprintf(stderr, "rate %.0f orders/s: %d orders, %d errors\n", r.Rate, r.Orders, r.Errors)
	})
	if err != nil {
		return err // the settings were checked above: this is the API or a read model failing
	}
	return printLoad(stdout, opts.format, reports, best, opts.ceiling)
}

// loadSteps runs cfg at each rate, then, with ceiling, at 1.5× the last
// rate while it was sustained; best is the highest sustained rate (0: none).
func loadSteps(ctx context.Context, cfg load.Config, rates []float64, ceiling bool, each func(load.Report)) ([]load.Report, float64, error) {
	var reports []load.Report
	var best float64
	rate := 0.0
	for i := 0; ctx.Err() == nil; i++ {
		switch {
		case i < len(rates):
			rate = rates[i]
		case ceiling && len(reports) > 0 && reports[len(reports)-1].Sustained() && rate*1.5 <= maxCeilingRate:
			rate *= 1.5
		default:
			return reports, best, nil
		}
		cfg.Rate = rate
		r, err := load.Run(ctx, cfg)
		if err != nil {
			return reports, best, err
		}
		each(r)
		reports = append(reports, r)
		if r.Sustained() {
			best = max(best, r.Rate)
		}
	}
	return reports, best, ctx.Err()
}

func printLoad(out io.Writer, format outputFormat, reports []load.Report, best float64, ceiling bool) error {
	if format == formatJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runs                []load.Report `json:"runs"`
			HighestSustainedRps float64       `json:"highest_sustained_orders_per_second"`
		}{reports, best})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, load.Header)
	for _, r := range reports {
		for _, row := range r.Rows() {
			fmt.Fprintln(tw, row)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ceiling {
		fmt.Fprintf(out, "highest sustained rate: %.0f orders/s (≥ 95 %% achieved, no error, no late probe, command p99 < 1 s)\n", best)
	}
	var stages []string
	for _, r := range reports {
		stages = append(stages, r.StageRows()...)
	}
	if len(stages) > 0 {
		fmt.Fprintln(out, "\ncommit → queryable by stage (each daemon's histogram, every event of the run; quantiles are bucket upper bounds):")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, load.StageHeader)
		for _, row := range stages {
			fmt.Fprintln(tw, row)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, r := range reports {
		if r.FirstError != "" {
			fmt.Fprintf(out, "rate %.0f: first error: %s\n", r.Rate, r.FirstError)
		}
	}
	return nil
}
