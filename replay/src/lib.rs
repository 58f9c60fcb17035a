//! schedrec's replay side. For now: the kernel's PELT arithmetic
//! ([`pelt`]), checked against the closed-form oracles of the PELT
//! reference. The timeline rebuild, the replay driver and the models come
//! with the rest of issue #4.

pub mod pelt;
