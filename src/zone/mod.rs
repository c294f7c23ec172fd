//! The DNS zone: an RFC 1035 master file of the delegations.
