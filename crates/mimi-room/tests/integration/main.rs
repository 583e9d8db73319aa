//! Whole-room flows with real OpenMLS on both sides: clients build commits and messages, the
//! hub validates them, clients process what the hub accepted.

mod flows;
mod openmls_patch;
mod room_state;
