@main struct StoreBenchMain { static func main() {} }
