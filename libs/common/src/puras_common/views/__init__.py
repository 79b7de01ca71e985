"""Pure folds over events that more than one service keeps in memory or in Postgres."""
