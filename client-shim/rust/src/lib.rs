//! tether-shim: work in progress (see the client shim issue).
