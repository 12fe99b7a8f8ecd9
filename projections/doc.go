// Package projections is what every read model of orderstream shares: the
// generation (Generation, its states) and the read-model interface
// (ReadModel) that projections/analytics and projections/search implement
// and that the rebuild, the status and the command line use without
// knowing which read model they hold.
//
// A generation is one complete copy of a read model (ClickHouse tables
// <base>_g<N>, search index <prefix>_v<N>). A rebuild builds N+1 beside N,
// the daemons write every live generation, a cutover makes one serve, and
// the one it replaced is kept current for a rollback.
//
// The package imports only the consumer runtime (a read model's sink is a
// consumers.Sink); it never imports an application (internal/rebuild,
// internal/status) or cmd.
package projections
