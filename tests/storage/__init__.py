"""Tests of the SQL journal."""
