using Appliance.Config;

namespace Appliance.Hosting;

/// <summary>`appliance check-config FILE`: every error on its own line as "path: message"; exit 1 when any.</summary>
public static class CheckConfigCommand
{
    public static int Execute(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 1 || args[0].StartsWith('-'))
        {
            stderr.WriteLine("usage: appliance check-config FILE");
            return 2;
        }

        string file = Path.GetFullPath(args[0]);
        IReadOnlyList<ConfigError> errors;
        try
        {
            ApplianceConfig config = ConfigLoader.LoadFile(file);
            errors = ConfigCompiler.Validate(config, Path.GetDirectoryName(file)!);
        }
        catch (ConfigException e)
        {
            errors = e.Errors;
        }

        foreach (ConfigError error in errors)
        {
            stderr.WriteLine(error.ToString());
        }

        if (errors.Count > 0)
        {
            stderr.WriteLine($"{file}: {errors.Count} error(s)");
            return 1;
        }

        stdout.WriteLine($"{file}: ok");
        return 0;
    }
}
