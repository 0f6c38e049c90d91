//! Support for the end-to-end tests: locating the real binaries, starting them
//! on free loopback ports with temporary state, and talking to them.
