/// AUTOMATIC1111's display names for Atelier's sampler identifiers, in both directions, so a PNG
/// written here pastes into A1111 (and tools that read its `parameters` chunk) with the right
/// sampler, and a PNG from A1111 can be re-run here.
public enum A1111SamplerNames {
    /// Atelier identifier → A1111 display name. diffusers' PNDM with `skip_prk_steps` is what
    /// A1111 (and ldm before it) calls PLMS.
    public static let table: [(id: String, displayName: String)] = [
        ("ddim", "DDIM"),
        ("pndm", "PLMS"),
        ("euler", "Euler"),
        ("euler-a", "Euler a"),
        ("dpm++2m", "DPM++ 2M"),
        ("dpm++2m-karras", "DPM++ 2M Karras"),
    ]

    /// The A1111 display name for an Atelier sampler identifier, or nil when A1111 has no name for it.
    public static func displayName(for id: String) -> String? {
        table.first { $0.id == id }?.displayName
    }

    /// The Atelier identifier for an A1111 sampler name, or nil when unknown. Matching is exact
    /// first, then case-insensitive; "PNDM" is accepted for PLMS. A1111 1.9 and later write the
    /// schedule separately ("Sampler: DPM++ 2M, Schedule type: Karras"); pass that as
    /// `scheduleType` and the pair maps to `dpm++2m-karras`. Other schedule types are ignored.
    public static func id(for displayName: String, scheduleType: String? = nil) -> String? {
        let name = displayName.trimmingWhitespace()
        var id = table.first { $0.displayName == name }?.id
            ?? table.first { $0.displayName.lowercased() == name.lowercased() }?.id
        if id == nil, name.lowercased() == "pndm" { id = "pndm" }
        if id == "dpm++2m", scheduleType?.trimmingWhitespace().lowercased() == "karras" {
            id = "dpm++2m-karras"
        }
        return id
    }
}

extension String {
    /// Leading and trailing whitespace removed, as Python's `str.strip()` (see `A1111Infotext`).
    func trimmingWhitespace() -> String { A1111Infotext.pythonStrip(self) }
}
