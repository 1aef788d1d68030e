//! State tests (keys and worker answers in, state and effects out) and rendering tests (a
//! `TestBackend`, at 80x24 and wide, with CJK text).

mod app;
mod fixtures;
mod render;
