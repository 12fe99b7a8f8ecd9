// Package readmodel connects the API to the read models: Analytics serves
// api.Analytics from projections/analytics' Queries and Search serves
// api.Search from projections/search's Query — the same queries the
// `orderstream analytics` and `orderstream search` commands run.
//
// The adapters convert types only. They compute no metric; the one value
// derived here is an order line's amount (quantity × unit price, through
// schemas.Line.Amount, exact), which the search document does not store.
// Search's inclusive Europe/London calendar days become the half-open UTC
// instants search.Request takes. Errors keep their cause and additionally
// wrap api.ErrNotFound / api.ErrInvalidRequest where the read model reports
// search.ErrNotFound / search.ErrInvalidRequest.
package readmodel
