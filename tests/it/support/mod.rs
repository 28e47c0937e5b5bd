//! Test infrastructure shared by the integration test modules: the capture server standing in
//! for chat services, and the harness that starts the simulator, writes bot configs and starts
//! the bot. All modules are one binary, so an unused helper here is reported as dead code.

pub mod capture;
pub mod harness;
pub mod postgres;
pub mod webdriver;
