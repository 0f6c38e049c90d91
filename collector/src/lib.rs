//! `bfp-collector`: the central service.
