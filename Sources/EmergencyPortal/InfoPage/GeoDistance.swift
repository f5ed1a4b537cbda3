import Foundation
import KiezboxCore

extension GeoPosition {
    /// The great-circle distance in metres (haversine, mean earth radius 6,371,008.8 m): within a district the
    /// error against the ellipsoid is far below what a walker notices.
    public func distance(to other: GeoPosition) -> Double {
        let radians = Double.pi / 180
        let deltaLatitude = (other.latitude - self.latitude) * radians
        let deltaLongitude = (other.longitude - self.longitude) * radians
        let a = pow(sin(deltaLatitude / 2), 2)
            + cos(self.latitude * radians) * cos(other.latitude * radians) * pow(sin(deltaLongitude / 2), 2)
        return 2 * 6_371_008.8 * asin(min(1, a.squareRoot()))
    }
}
