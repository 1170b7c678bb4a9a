//! Cases in and out of Haven in the Human Trafficking Case Data Standard (HTCDS v2.0): the column
//! table both directions share (`columns`), the export (`export`), the import (`import`), and CSV
//! and XLSX files (`sheet`, whose archives `archive` checks first) (D114); and the k-anonymised file for CTDC (`ctdc`, D115).

mod archive;
pub mod columns;
pub mod ctdc;
pub mod export;
pub mod import;
mod plan;
pub mod routes;
pub mod sheet;
