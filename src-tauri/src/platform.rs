//! The few things that differ by platform, each a few lines: the tray icon's look (a template
//! image in the macOS menu bar, a filled tile on Linux panels) and the macOS activation policy
//! (menu bar only, no Dock icon). Shared logic stays outside this module.

use tauri::image::Image;
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{App, Wry};

/// What the tray icon says at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayLook {
    Normal,
    /// The Docker Runtime is off.
    Off,
    /// Calls wait for approval.
    Pending,
    /// The engine is not running, or Docker cannot be reached.
    Error,
}

static BLANK: [u8; 4] = [0, 0, 0, 0];

fn image(bytes: &'static [u8]) -> Image<'static> {
    Image::from_bytes(bytes).unwrap_or_else(|_| Image::new(&BLANK, 1, 1))
}

#[cfg(target_os = "macos")]
pub fn tray_icon(look: TrayLook) -> Image<'static> {
    match look {
        TrayLook::Off => image(include_bytes!("../../icons/tray-template-off.png")),
        _ => image(include_bytes!("../../icons/tray-template.png")),
    }
}

#[cfg(not(target_os = "macos"))]
pub fn tray_icon(look: TrayLook) -> Image<'static> {
    match look {
        TrayLook::Normal => image(include_bytes!("../../icons/tray.png")),
        TrayLook::Off => image(include_bytes!("../../icons/tray-off.png")),
        TrayLook::Pending => image(include_bytes!("../../icons/tray-pending.png")),
        TrayLook::Error => image(include_bytes!("../../icons/tray-error.png")),
    }
}

#[cfg(target_os = "macos")]
pub fn tray_builder(builder: TrayIconBuilder<Wry>) -> TrayIconBuilder<Wry> {
    builder.icon_as_template(true)
}

#[cfg(not(target_os = "macos"))]
pub fn tray_builder(builder: TrayIconBuilder<Wry>) -> TrayIconBuilder<Wry> {
    builder
}

#[cfg(target_os = "macos")]
pub fn after_icon_change(tray: &TrayIcon<Wry>) {
    let _ = tray.set_icon_as_template(true);
}

#[cfg(not(target_os = "macos"))]
pub fn after_icon_change(_tray: &TrayIcon<Wry>) {}

/// A menu bar app: no Dock icon, no app menu.
#[cfg(target_os = "macos")]
pub fn setup(app: &mut App) {
    app.set_activation_policy(tauri::ActivationPolicy::Accessory);
}

#[cfg(not(target_os = "macos"))]
pub fn setup(_app: &mut App) {}
