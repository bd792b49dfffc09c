//! The layouts of the seed's Verification section (filled in below).
