"""What makes a result trustworthy after the fact: audits, rescoring, re-inference, MLflow sync."""
