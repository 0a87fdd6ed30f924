[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Appliance.Hosting;

/// <summary>Entry point: `appliance run | check-config | version`. Exit codes: 0 ok, 1 bad config or failure, 2 bad usage.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        string command = args.Length > 0 ? args[0] : "help";
        string[] rest = args.Length > 0 ? args[1..] : [];
        switch (command)
        {
            case "run":
                return await RunCommand.ExecuteAsync(rest).ConfigureAwait(false);
            case "check-config":
                return CheckConfigCommand.Execute(rest, Console.Out, Console.Error);
            case "ctl":
                return await Admin.CtlCommand.ExecuteAsync(rest, Console.Out, Console.Error).ConfigureAwait(false);
            case "version":
            case "--version":
                Console.WriteLine($"appliance {Version}");
                return 0;
            case "help":
            case "--help":
            case "-h":
                Console.WriteLine(Usage);
                return 0;
            default:
                Console.Error.WriteLine($"unknown command '{command}'\n\n{Usage}");
                return 2;
        }
    }

    public static string Version =>
        typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public const string Usage = """
        usage: appliance <command> [options]

        commands:
          run [--config FILE]        run the gateway (without --config: the embedded default,
                                     state in ./state, HTTPS on 127.0.0.1:8443)
          check-config FILE          validate a config file; prints each error with its JSON path
          ctl ...                    administer a running appliance over its admin socket (ctl --help)
          version                    print the version
        """;
}
