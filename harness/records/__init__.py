"""Evaluation records and their proofs on disk: the typed record, signatures, MLflow tracking."""

from harness.records.record import EvaluationRecord, RecordError, load_record, load_records, save_record

__all__ = ["EvaluationRecord", "RecordError", "load_record", "load_records", "save_record"]
