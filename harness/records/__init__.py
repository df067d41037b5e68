"""Evaluation records and their proofs on disk: the typed record and its schema, signatures, MLflow
tracking, and the sinks a record goes to once it is written."""

from harness.records.record import EvaluationRecord, InvalidRecord, RecordError, load_record, load_records, save_record, validate_record

__all__ = ["EvaluationRecord", "InvalidRecord", "RecordError", "load_record", "load_records", "save_record", "validate_record"]
