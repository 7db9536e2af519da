"""Batch inference: OpenAI Batch JSONL in, results JSONL out, as a job."""
