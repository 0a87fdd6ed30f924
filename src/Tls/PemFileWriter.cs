using System.Security.Cryptography;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// Writes PEM files (certificates, keys) atomically: a temp file beside the target, created with its final mode,
/// flushed to disk, then renamed over the target, so a reader sees the old file or the new one, never half of one,
/// and a key is never readable by others, not even briefly.
/// </summary>
internal static class PemFileWriter
{
    public const UnixFileMode PrivateKeyMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode CertificateMode = PrivateKeyMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public static void Write(string path, string content, UnixFileMode mode)
    {
        string fullPath = Path.GetFullPath(path);
        string temporary = Path.Combine(
            Path.GetDirectoryName(fullPath)!,
            $".{Path.GetFileName(fullPath)}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
            };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = mode;
            }

            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(Encoding.ASCII.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
