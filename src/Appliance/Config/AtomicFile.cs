using System.Runtime.InteropServices;

namespace Appliance.Config;

/// <summary>
/// Writes a file so that a crash at any moment leaves either the old or the new content: write a temp file in
/// the same folder, fsync it, rename it over the target, fsync the folder (so the rename itself is durable).
/// </summary>
public static partial class AtomicFile
{
    public static void Write(string path, string content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = mode,
            }))
            {
                byte[] bytes = System.Text.Encoding.UTF8.GetBytes(content);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
            FsyncDirectory(dir);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static void FsyncDirectory(string dir)
    {
        int fd = Open(dir, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            Fsync(fd);
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
