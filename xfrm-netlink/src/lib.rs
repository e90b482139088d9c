//! A typed async handle over the kernel's XFRM netlink interface.
//!
//! Built in issue 3 ("Kernel interface (xfrm-netlink) and the kernel lab");
//! this crate is an empty placeholder in the workspace until then.
