package main

import (
	"fmt"

	"github.com/orderstream/orderstream/producer/store"
	"github.com/spf13/cobra"
)

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the write side's SQL migrations to PostgreSQL (idempotent)",
		Long: `Applies every embedded, versioned SQL migration of the write side (orders,
order lines, outbox) that the database at --pg-url has not applied yet, and
prints the schema version reached. Safe to run on every deploy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := g.pgPool(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			v, err := store.Migrate(cmd.Context(), pool, g.log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "write-side schema at version %d\n", v)
			return nil
		},
	}
}
