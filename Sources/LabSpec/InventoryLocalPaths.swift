import Foundation

extension Inventory {
    /// Folders on this machine that the inventory names and that a run will read: today the
    /// app's `source.path`. Checked before a run that uses them, so that a copied inventory
    /// whose relative path no longer leads anywhere is blamed on the inventory's field (and
    /// says relative to what), not on the playbook step that uploads it.
    public func localPathProblems() -> [InventoryProblem] {
        guard case .path(let path)? = app?.source else { return [] }
        let note = " (relative paths in the inventory are relative to the inventory's folder, \(baseDirectory.standardizedFileURL.path))"
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            return [InventoryProblem(path: "app.source.path", message: "the folder \(path) does not exist\(note); set it to the app's folder on this machine")]
        }
        if !isDirectory.boolValue {
            return [InventoryProblem(path: "app.source.path", message: "\(path) is a file, not a folder\(note); set it to the app's folder on this machine")]
        }
        return []
    }
}
