//! Unit tests of training.
