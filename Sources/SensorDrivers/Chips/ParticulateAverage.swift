/// How particulate-matter readings of one measurement window are combined.
enum ParticulateAverage {
    /// The mean of `values` without their minimum and maximum when there are at least three, as airrohr averages its
    /// PM readings (sensors.md §8), so one spike from an insect or a gust does not move the result.
    static func trimmedMean(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let kept = values.count >= 3 ? Array(values.sorted().dropFirst().dropLast()) : values
        return kept.reduce(0, +) / Double(kept.count)
    }
}
