"""Secret-bearing flags and URL passwords are redacted wherever the framework records or prints them."""

import logging

from beam_ml import redaction


def test_secret_flags_lose_their_values_in_both_flag_forms():
    args = [
        "--runner=DirectRunner", "--s3_access_key_id=AKIAEXAMPLE", "--s3_secret_access_key", "s3cr3tvalue",
        "--s3_session_token=tok3n", "--db-password=hunter22", "--s3_endpoint_url=http://127.0.0.1:9000",
        "--direct_num_workers", "2",
    ]  # fmt: skip
    assert redaction.redact_args(args) == [
        "--runner=DirectRunner", "--s3_access_key_id=***", "--s3_secret_access_key", "***",
        "--s3_session_token=***", "--db-password=***", "--s3_endpoint_url=http://127.0.0.1:9000",
        "--direct_num_workers", "2",
    ]  # fmt: skip
    assert redaction.secret_values(args) == {"AKIAEXAMPLE", "s3cr3tvalue", "tok3n", "hunter22"}


def test_url_passwords_are_hidden_and_the_rest_of_the_url_kept():
    url = "postgresql+psycopg://beam:p%40ss-w0rd@db.internal:5432/meta"
    assert redaction.redact_url(url) == "postgresql+psycopg://beam:***@db.internal:5432/meta"
    assert redaction.redact_args([f"--metadata={url}"]) == ["--metadata=postgresql+psycopg://beam:***@db.internal:5432/meta"]
    assert redaction.redact_url("s3://bucket/path") == "s3://bucket/path"


def test_registered_secrets_are_scrubbed_from_log_records_whoever_logs_them(caplog):
    redaction.register_args(["--s3_secret_access_key=zq8Xk2verysecret"])
    redaction.register_url("postgresql://u:pg-Pa55word@h/db")
    record = logging.LogRecord("apache_beam", logging.WARNING, __file__, 1, "options %s and %s", ("--s3_secret_access_key=zq8Xk2verysecret", "pg-Pa55word"), None)
    text = redaction.ScrubbingFormatter("%(message)s").format(record)
    assert "zq8Xk2verysecret" not in text and "pg-Pa55word" not in text
    assert text == "options --s3_secret_access_key=*** and ***"
