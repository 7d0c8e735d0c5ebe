"""Test support for the submission service: tokens and an in-process service under test."""
