//! All cryptography lives here: the master key and what is derived from it (`keys`), and
//! sealing secrets at rest (`seal`), and the signed OAuth state with its PKCE derivation (`state`).

pub mod keys;
pub mod seal;
pub mod state;

pub use keys::{Keys, MasterKey};
pub use seal::Sealer;
