"""The platform server: one REST API over a deployment's records, for team mode."""
