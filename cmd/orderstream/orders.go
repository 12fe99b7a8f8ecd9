package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
)

// orderFlags are the flags every `orders` subcommand shares.
type orderFlags struct {
	ifVersion int64
	key       string
	format    outputFormat
}

// cliKeyScope is the scope of the CLI's idempotency keys: the same as a
// caller of an API with --auth=none (no subject), so a key is one request
// whichever of the two local clients sent it.
const cliKeyScope = ""

func newOrdersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orders",
		Short: "Place, pay, ship, cancel or refund an order through the write side",
		Long: `Runs one command through the write side's application service on --pg-url
(the aggregate decides; the order, its events and the idempotency key are
saved in one transaction), as the API's POST /api/v1/orders… do.

--if-version N runs the command only on version N of the order (exit 1 with
"is at version M" otherwise); without it a command that races another writer
is re-decided on fresh state. --idempotency-key K makes a retry safe: a
command already committed under K prints its first result again (replayed)
and writes nothing; K used for another command or values fails. Keys are
shared with an API run with --auth=none and kept for its
--idempotency-retention (24 h).

A refused command exits 1 naming the rule (order-cancelled, order-not-paid,
amount-mismatch, …). The result's consistency token, given to the API's
queries in the Consistency-Token header, makes them wait until the read
models show this write (the CLI's queries do not take it).`,
		Example: `  orderstream orders place --country France --customer 17850 --line 22728:6:2.50 --line "22726:1:5:ALARM CLOCK"
  orderstream orders pay 1f0c…-… --amount 20.00 --if-version 1 --idempotency-key pay-536370
  orderstream orders refund 1f0c…-… --amount 5 --reason damaged --format json`,
	}
	cmd.AddCommand(newPlaceCmd(g))
	for _, name := range []string{"pay", "ship", "cancel", "refund"} {
		cmd.AddCommand(newChangeCmd(g, name))
	}
	return cmd
}

func addOrderFlags(cmd *cobra.Command, fl *orderFlags, conditional bool) {
	f := cmd.Flags()
	if conditional {
		f.Int64Var(&fl.ifVersion, "if-version", 0, "run only on this version of the order (0: any)")
	}
	f.StringVar(&fl.key, "idempotency-key", "", "idempotency key: a retry with the same key and values prints the first result and writes nothing")
	addFormatFlag(cmd, &fl.format)
}

func newPlaceCmd(g *globals) *cobra.Command {
	var (
		fl    orderFlags
		req   api.PlaceRequest
		lines []string
	)
	cmd := &cobra.Command{
		Use:   "place",
		Short: "Place an order (a new id; version 1)",
		Long: `Places a new order. --line STOCK_CODE:QUANTITY:UNIT_PRICE[:DESCRIPTION] gives
one line (repeat it); the unit price is a decimal in GBP. The order number
defaults to the new id without hyphens.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for i, l := range lines {
				lr, err := parseLine(l)
				if err != nil {
					return usagef("--line %d %q: %v", i+1, l, err)
				}
				req.Lines = append(req.Lines, lr)
			}
			in, err := api.PlaceCommand(req, time.Now())
			if err != nil {
				return usagef("place: %v", cliNames(err))
			}
			id := uuid.NewString()
			if in.Number == "" {
				in.Number = strings.ReplaceAll(id, "-", "")
			}
			return runOrderCommand(cmd.Context(), g, fl, "place", "", req, cmd.OutOrStdout(),
				func(h *command.Handler, md schemas.Metadata, opts command.Options) (command.Receipt, error) {
					return h.PlaceOrder(cmd.Context(), id, in, md, opts)
				})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Country, "country", "", "country (required), as in the data: France, United Kingdom, EIRE …")
	f.StringVar(&req.CustomerID, "customer", "", "customer id (empty: a guest)")
	f.StringVar(&req.Currency, "currency", schemas.CurrencyGBP, "currency (GBP only: the read models sum in GBP)")
	f.StringVar(&req.Kind, "kind", string(schemas.KindSale), "sale, credit_note or adjustment")
	f.StringVar(&req.OrderNumber, "order-number", "", "order number (default: the new id without hyphens)")
	f.StringArrayVar(&lines, "line", nil, "STOCK_CODE:QUANTITY:UNIT_PRICE[:DESCRIPTION], repeatable")
	addOrderFlags(cmd, &fl, false)
	return cmd
}

// parseLine reads STOCK_CODE:QUANTITY:UNIT_PRICE[:DESCRIPTION].
func parseLine(s string) (api.LineRequest, error) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 3 {
		return api.LineRequest{}, errors.New("want STOCK_CODE:QUANTITY:UNIT_PRICE[:DESCRIPTION]")
	}
	qty, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return api.LineRequest{}, fmt.Errorf("quantity %q is not an integer", parts[1])
	}
	price, err := decimal.NewFromString(parts[2])
	if err != nil {
		return api.LineRequest{}, fmt.Errorf("unit price %q is not a decimal", parts[2])
	}
	l := api.LineRequest{StockCode: parts[0], Quantity: &qty, UnitPrice: &api.Amount{Decimal: price}}
	if len(parts) == 4 {
		l.Description = parts[3]
	}
	return l, nil
}

func newChangeCmd(g *globals, name string) *cobra.Command {
	var (
		fl     orderFlags
		req    api.ChangeRequest
		amount string
	)
	short := map[string]string{
		"pay":    "Pay an order in full (--amount: its total)",
		"ship":   "Ship a paid order",
		"cancel": "Cancel a placed or paid order (--reason required)",
		"refund": "Refund part or all of what was paid (--amount)",
	}[name]
	cmd := &cobra.Command{
		Use:   name + " ORDER_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if amount != "" {
				d, err := decimal.NewFromString(amount)
				if err != nil {
					return usagef("--amount %q: not a decimal (such as 20.00)", amount)
				}
				req.Amount = &api.Amount{Decimal: d}
			}
			c, err := api.ChangeCommand(name, req, time.Now())
			if err != nil {
				return usagef("%s: %v", name, cliNames(err))
			}
			id := args[0]
			return runOrderCommand(cmd.Context(), g, fl, name, id, req, cmd.OutOrStdout(),
				func(h *command.Handler, md schemas.Metadata, opts command.Options) (command.Receipt, error) {
					return h.Run(cmd.Context(), id, c, md, opts)
				})
		},
	}
	f := cmd.Flags()
	switch name {
	case "pay":
		f.StringVar(&amount, "amount", "", "amount paid, in GBP: the order's total (required)")
		f.StringVar(&req.Reference, "reference", "", "payment reference")
	case "ship":
		f.StringVar(&req.Carrier, "carrier", "", "carrier")
		f.StringVar(&req.TrackingNumber, "tracking", "", "tracking number")
	case "cancel":
		f.StringVar(&req.Reason, "reason", "", "why (required)")
	case "refund":
		f.StringVar(&amount, "amount", "", "amount refunded, in GBP (required)")
		f.StringVar(&req.Reason, "reason", "", "why")
	}
	addOrderFlags(cmd, &fl, true)
	return cmd
}

// cliNames turns the API's field names in err into the command's flags.
func cliNames(err error) string {
	return strings.NewReplacer("tracking_number:", "--tracking:", "customer_id:", "--customer:", "order_number:", "--order-number:",
		"amount:", "--amount:", "reason:", "--reason:", "country:", "--country:", "currency:", "--currency:", "kind:", "--kind:",
		"lines:", "--line:", "\n", "; ").Replace(err.Error())
}

// runOrderCommand opens the write side, runs do under fl's options and
// prints the receipt.
func runOrderCommand(ctx context.Context, g *globals, fl orderFlags, name, id string, body any, out io.Writer,
	do func(*command.Handler, schemas.Metadata, command.Options) (command.Receipt, error)) error {
	if fl.ifVersion < 0 {
		return usagef("--if-version %d: want a version of at least 1 (or 0: any)", fl.ifVersion)
	}
	opts := command.Options{IfVersion: fl.ifVersion}
	if fl.key != "" {
		if len(fl.key) > 255 {
			return usagef("--idempotency-key: %d characters, at most 255", len(fl.key))
		}
		opts.Key = &command.Key{Scope: cliKeyScope, Key: fl.key, Fingerprint: api.Fingerprint(name, id, body)}
	}
	repo, closePool, err := openRepository(ctx, g, 2)
	if err != nil {
		return err
	}
	defer closePool()
	h := command.NewHandler(repo, store.IsConflict)
	rc, err := do(h, schemas.Metadata{CorrelationID: uuid.NewString()}, opts)
	if rule := api.RuleName(err); rule != "" {
		return fmt.Errorf("refused (rule %s): %w", rule, err)
	}
	if err != nil {
		return err
	}
	return printReceipt(out, fl.format, rc)
}

func printReceipt(out io.Writer, format outputFormat, rc command.Receipt) error {
	res := struct {
		api.CommandResponse
		Replayed bool `json:"replayed"`
	}{api.CommandResponse{OrderID: rc.OrderID, Version: rc.Version, Status: string(rc.Status),
		ConsistencyToken: api.ConsistencyToken(rc.OrderID, rc.Version)}, rc.Replayed}
	if format == formatJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER_ID\tVERSION\tSTATUS\tCONSISTENCY_TOKEN\tREPLAYED")
	fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%t\n", res.OrderID, res.Version, res.Status, res.ConsistencyToken, res.Replayed)
	return tw.Flush()
}
