//! CloudWatch Logs Insights query language: parser, validator and local evaluator.
