//! `bfp-models`: builds the labelled data, trains with smartcore, evaluates, and
//! exports the compact model the agent and the collector embed.
