namespace Appliance.Config;

/// <summary>
/// A file's identity for change detection: where a symlink finally points, its size and its write time ("missing"
/// or "unreadable" otherwise). The compiler records one for every TLS file it reads (<see cref="ConfigSnapshot.TlsFiles"/>);
/// the certificate watcher compares them with the files on disk.
/// </summary>
public static class FileFingerprint
{
    public static string Of(string path)
    {
        try
        {
            var info = new FileInfo(path);
            string target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
            var final = new FileInfo(target);
            return final.Exists ? $"{target}|{final.Length}|{final.LastWriteTimeUtc.Ticks}" : "missing";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unreadable";
        }
    }
}
