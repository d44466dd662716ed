"""lmmcore: exact, fast linear mixed models for heritability and QTL mapping."""
