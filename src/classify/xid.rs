//! NVIDIA Xid / SXid codes → failure kind.
//!
//! A kernel-log line `NVRM: Xid (PCI:0000:3b:00): 79, pid=..., GPU has fallen off the bus` carries a
//! code whose meaning NVIDIA documents. [`XID_TABLE`] is a compact transcription of NVIDIA's Xid
//! catalog (as machine-read by leptonai/gpud, Apache-2.0; see DESIGN.md "Real data at hand"): for each
//! documented code, NVIDIA's immediate resolution and the kind faultline derives from it.
//!
//! Derivation (done once, offline, from the catalog's `nvidia_immediate_resolution` and
//! `potential_*` columns; the table below is the result):
//! * `RESTART_APP` — the application's GPU context faulted (graphics/SM exceptions, MMU page
//!   faults, copy-engine and codec exceptions): [`FailureKind::CudaError`], unless the catalog
//!   suspects frame-buffer corruption and not the application (then hardware);
//! * `IGNORE` — [`FailureKind::CudaError`] when the catalog suspects the application and not the
//!   hardware, otherwise [`FailureKind::GpuHardware`];
//! * everything else (`RESET_GPU`, `RESTART_BM`, `RESTART_VM`, `WORKFLOW_*` such as Xid 48 double-bit
//!   ECC, Xid 74 NVLink and the NVLink5 codes 144–150, `CONTACT_SUPPORT`, `CHECK_*`, undocumented
//!   codes): [`FailureKind::GpuHardware`].
//!
//! The catalog gives codes 162–172 no resolution (`UNSPECIFIED` here); 171 and 172, the
//! uncorrectable DRAM/SRAM errors it describes as "additional to Xid 48", take Xid 48's
//! `WORKFLOW_XID_48`, as in `src/rules/xid_actions.csv`.
//!
//! Every NVSwitch SXid is a fabric fault: [`FailureKind::GpuHardware`].

use crate::model::FailureKind;

const A: FailureKind = FailureKind::CudaError;
const H: FailureKind = FailureKind::GpuHardware;

/// `(xid, kind, NVIDIA immediate resolution)` for every documented Xid, sorted by code.
pub const XID_TABLE: &[(u32, FailureKind, &str)] = &[
    (8, A, "RESTART_APP"),
    (11, H, "RESTART_APP"),
    (13, A, "RESTART_APP"),
    (25, A, "RESTART_APP"),
    (31, A, "RESTART_APP"),
    (32, H, "RESTART_APP"),
    (37, H, "IGNORE"),
    (38, H, "IGNORE"),
    (39, A, "RESTART_APP"),
    (40, A, "RESTART_APP"),
    (41, A, "RESTART_APP"),
    (43, A, "IGNORE"),
    (44, H, "IGNORE"),
    (45, H, "WORKFLOW_XID_45"),
    (46, H, "RESET_GPU"),
    (48, H, "WORKFLOW_XID_48"),
    (54, H, "CHECK_MECHANICALS"),
    (60, A, "RESTART_APP"),
    (62, H, "RESET_GPU"),
    (63, H, "IGNORE"),
    (64, H, "RESET_GPU"),
    (66, A, "IGNORE"),
    (67, A, "IGNORE"),
    (68, A, "RESTART_APP"),
    (69, A, "RESTART_APP"),
    (70, A, "RESTART_APP"),
    (71, A, "RESTART_APP"),
    (72, A, "RESTART_APP"),
    (74, H, "WORKFLOW_NVLINK_ERR"),
    (75, A, "RESTART_APP"),
    (76, A, "RESTART_APP"),
    (77, A, "RESTART_APP"),
    (78, H, "UPDATE_SWFW"),
    (79, H, "RESTART_BM"),
    (80, H, "RESTART_APP"),
    (82, A, "RESTART_APP"),
    (83, A, "RESTART_APP"),
    (84, A, "RESTART_APP"),
    (85, A, "RESTART_APP"),
    (86, A, "RESTART_APP"),
    (88, A, "RESTART_APP"),
    (89, A, "RESTART_APP"),
    (92, H, "IGNORE"),
    (93, A, "IGNORE"),
    (94, H, "RESTART_APP"),
    (95, H, "RESET_GPU"),
    (96, A, "RESTART_APP"),
    (97, A, "RESTART_APP"),
    (98, A, "RESTART_APP"),
    (99, A, "RESTART_APP"),
    (100, A, "RESTART_APP"),
    (101, A, "RESTART_APP"),
    (102, A, "RESTART_APP"),
    (103, A, "RESTART_APP"),
    (104, A, "RESTART_APP"),
    (105, A, "RESTART_APP"),
    (106, A, "IGNORE"),
    (107, A, "IGNORE"),
    (109, H, "RESET_GPU"),
    (110, H, "RESET_GPU"),
    (119, H, "RESET_GPU"),
    (120, H, "RESET_GPU"),
    (121, H, "IGNORE"),
    (126, A, "RESTART_APP"),
    (127, A, "RESTART_APP"),
    (128, A, "RESTART_APP"),
    (129, A, "RESTART_APP"),
    (130, A, "RESTART_APP"),
    (131, A, "RESTART_APP"),
    (132, A, "RESTART_APP"),
    (133, A, "RESTART_APP"),
    (134, A, "RESTART_APP"),
    (135, A, "RESTART_APP"),
    (136, H, "RESET_GPU"),
    (137, A, "IGNORE"),
    (139, A, "RESTART_APP"),
    (140, H, "RESET_GPU"),
    (141, H, "IGNORE"),
    (142, H, "CONTACT_SUPPORT"),
    (143, H, "RESET_GPU"),
    (144, H, "WORKFLOW_NVLINK5_ERR"),
    (145, H, "WORKFLOW_NVLINK5_ERR"),
    (146, H, "WORKFLOW_NVLINK5_ERR"),
    (147, H, "WORKFLOW_NVLINK5_ERR"),
    (148, H, "WORKFLOW_NVLINK5_ERR"),
    (149, H, "WORKFLOW_NVLINK5_ERR"),
    (150, H, "WORKFLOW_NVLINK5_ERR"),
    (151, H, "RESTART_VM"),
    (152, H, "IGNORE"),
    (153, H, "IGNORE"),
    (154, H, "XID_154"),
    (155, H, "RESET_GPU"),
    (156, H, "RESET_GPU"),
    (157, H, "IGNORE"),
    (158, H, "RESET_GPU"),
    (159, H, "CHECK_UVM"),
    (160, H, "IGNORE"),
    (161, H, "IGNORE"),
    (162, H, "UNSPECIFIED"),
    (163, H, "UNSPECIFIED"),
    (164, H, "UNSPECIFIED"),
    (165, H, "UNSPECIFIED"),
    (166, H, "UNSPECIFIED"),
    (167, H, "UNSPECIFIED"),
    (168, H, "UNSPECIFIED"),
    (169, H, "UNSPECIFIED"),
    (170, H, "UNSPECIFIED"),
    (171, H, "WORKFLOW_XID_48"),
    (172, H, "WORKFLOW_XID_48"),
];

/// The kind an Xid code stands for, and NVIDIA's immediate resolution (`"UNDOCUMENTED"` for codes
/// missing from the catalog, which are treated as hardware).
pub fn xid_kind(code: u32) -> (FailureKind, &'static str) {
    match XID_TABLE.binary_search_by_key(&code, |&(c, _, _)| c) {
        Ok(i) => (XID_TABLE[i].1, XID_TABLE[i].2),
        Err(_) => (FailureKind::GpuHardware, "UNDOCUMENTED"),
    }
}

/// The kind an NVSwitch SXid code stands for: always [`FailureKind::GpuHardware`].
pub fn sxid_kind(_code: u32) -> FailureKind {
    FailureKind::GpuHardware
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_matches_the_catalog_labels() {
        assert!(XID_TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        for code in [13, 31, 43, 69] {
            assert_eq!(xid_kind(code).0, FailureKind::CudaError, "xid {code}");
        }
        for code in [
            45, 48, 62, 74, 79, 94, 119, 144, 145, 146, 147, 148, 149, 150,
        ] {
            assert_eq!(xid_kind(code).0, FailureKind::GpuHardware, "xid {code}");
        }
        assert_eq!(xid_kind(79).1, "RESTART_BM");
        assert_eq!(xid_kind(9999), (FailureKind::GpuHardware, "UNDOCUMENTED"));
        assert_eq!(sxid_kind(12028), FailureKind::GpuHardware);
    }
}
