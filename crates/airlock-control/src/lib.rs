//! Typed messages of the control channel between the Airlock engine and the app.
//! JSON lines, one message per line, `{"type": "...", ...}`.
