//! Where each part of the screen goes, as a pure function of the terminal's size. Both the
//! renderer and the app (for paging, scrolling and mouse clicks) use it, so they always agree.

use ratatui::layout::Rect;

/// At this width and above, the preview sits beside the list instead of under it.
pub const WIDE: u16 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub query: Rect,
    pub filter: Option<Rect>,
    pub notice: Option<Rect>,
    pub list_title: Rect,
    pub list: Rect,
    pub preview_title: Rect,
    pub preview: Rect,
    /// The separator column between list and preview in the wide layout.
    pub divider: Option<Rect>,
    pub status: Rect,
}

impl Areas {
    /// Everything between the top lines and the status line.
    pub fn body(&self) -> Rect {
        let top = self.list_title.y;
        Rect::new(self.query.x, top, self.query.width, self.status.y.saturating_sub(top))
    }
}

pub fn areas(full: Rect, filter: bool, notice: bool) -> Areas {
    let (x, w, h) = (full.x, full.width, full.height);
    let row = |y: u16| Rect::new(x, full.y + y.min(h.saturating_sub(1)), w, u16::from(y < h));
    let mut y = 0;
    let query = row(y);
    y += 1;
    let filter = filter.then(|| {
        y += 1;
        row(y - 1)
    });
    let notice = notice.then(|| {
        y += 1;
        row(y - 1)
    });
    let status = Rect::new(x, full.y + h.saturating_sub(1), w, u16::from(h > y));
    let body_top = y.min(h);
    let body_h = h.saturating_sub(1).saturating_sub(body_top);
    let at = |dy: u16, height: u16, left: u16, width: u16| Rect::new(x + left, full.y + body_top + dy, width, height);
    if w >= WIDE {
        let list_w = (w / 2).min(90);
        let rows = body_h.saturating_sub(1);
        Areas {
            query,
            filter,
            notice,
            list_title: at(0, body_h.min(1), 0, list_w),
            list: at(1, rows, 0, list_w),
            divider: Some(at(0, body_h, list_w, 1)),
            preview_title: at(0, body_h.min(1), list_w + 1, w - list_w - 1),
            preview: at(1, rows, list_w + 1, w - list_w - 1),
            status,
        }
    } else {
        let list_rows = (body_h.saturating_sub(2) * 2 / 5).max(body_h.saturating_sub(1).min(1));
        let list_h = (1 + list_rows).min(body_h);
        let preview_h = body_h - list_h;
        Areas {
            query,
            filter,
            notice,
            list_title: at(0, list_h.min(1), 0, w),
            list: at(1, list_h.saturating_sub(1), 0, w),
            divider: None,
            preview_title: at(list_h, preview_h.min(1), 0, w),
            preview: at(list_h + 1, preview_h.saturating_sub(1), 0, w),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighty_by_twenty_four() {
        let a = areas(Rect::new(0, 0, 80, 24), false, false);
        assert_eq!(a.query, Rect::new(0, 0, 80, 1));
        assert_eq!(a.list_title.y, 1);
        assert_eq!(a.list, Rect::new(0, 2, 80, 8));
        assert_eq!(a.preview_title.y, 10);
        assert_eq!(a.preview, Rect::new(0, 11, 80, 12));
        assert_eq!(a.status, Rect::new(0, 23, 80, 1));
    }

    #[test]
    fn wide_puts_the_preview_beside_the_list() {
        let a = areas(Rect::new(0, 0, 160, 40), true, true);
        assert_eq!(a.list.y, 4);
        assert_eq!(a.preview.y, 4);
        assert_eq!(a.list.width + 1 + a.preview.width, 160);
        assert_eq!(a.list.height, 35);
    }

    #[test]
    fn tiny_sizes_stay_inside() {
        for (w, h) in [(0, 0), (1, 1), (10, 2), (10, 3), (20, 5), (200, 4)] {
            let full = Rect::new(0, 0, w, h);
            let a = areas(full, true, true);
            for r in [a.query, a.list_title, a.list, a.preview_title, a.preview, a.status]
                .into_iter()
                .filter(|r| r.area() > 0)
            {
                assert!(full.contains(r.as_position()), "{w}x{h}: {r:?}");
                assert!(r.bottom() <= h, "{w}x{h}: {r:?}");
            }
        }
    }
}
